// expect: 14:17 step([$class: 'Mailer']) is not supported
// expect: 15:17 step([$class: 'ArtifactArchiver']) needs `artifacts:`
// expect: 16:17 `publishHTML` needs `reportDir:`
// expect: 17:46 `lock` has no parameter `resorce` (did you mean `resource`?)
// expect: 21:20 changelog `[unclosed` is not a regular expression
// expect: 27:21 `notValues` belongs in an `exclude`
// expect: 9:31 unknown field `image` in `node`
pipeline {
    agent { node { label 'x'; image 'y' } }
    stages {
        stage('Old forms') {
            options { withCredentials([string(credentialsId: 'a', variable: 'A')]) }
            steps {
                step([$class: 'Mailer', recipients: 'team@example.com'])
                step([$class: 'ArtifactArchiver', fingerprint: true])
                publishHTML(target: [reportFiles: 'index.html'])
                lock(resource: 'a', resorce: 'b') { echo 'x' }
            }
        }
        stage('Log') {
            when { changelog '[unclosed' }
            steps { echo 'l' }
        }
        stage('Matrix') {
            matrix {
                axes {
                    axis { name 'OS'; notValues 'linux' }
                }
                stages { stage('M') { steps { echo 'm' } } }
            }
        }
    }
}
