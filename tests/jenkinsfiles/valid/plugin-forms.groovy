// The declarative forms older and plugin-heavy Jenkinsfiles use, written for this corpus.
pipeline {
    agent { node { label 'linux'; customWorkspace 'workspace/app' } }
    triggers { cron(env.BRANCH_NAME == 'main' ? 'H 4 * * 1-5' : '') }
    options {
        buildDiscarder(logRotator(numToKeepStr: "${env.KEEP_RUNS}"))
        rateLimitBuilds(throttle: [count: 2, durationName: 'hour', userBoost: true])
        disableRestartFromStage()
        disableResume()
        quietPeriod(5)
        checkoutToSubdirectory('app')
        ansiColor('xterm')
        timeout(time: "${params.MINUTES}", unit: 'MINUTES')
        withCredentials([string(credentialsId: 'registry-token', variable: 'REGISTRY_TOKEN')])
    }
    parameters {
        password(name: 'SIGNING_KEY', defaultValue: '', description: 'Key for signing the release')
        string(name: 'MINUTES', defaultValue: '30', description: 'How long the build may take')
    }
    stages {
        stage('Build') {
            agent { label { label 'large'; customWorkspace 'ws' } }
            steps {
                sh 'make dist'
                step([$class: 'ArtifactArchiver', artifacts: 'dist/**', fingerprint: true])
                step([$class: 'JUnitResultArchiver', testResults: 'reports/*.xml', allowEmptyResults: true])
                publishHTML(target: [reportDir: 'coverage', reportFiles: 'index.html', reportName: 'Coverage', keepAll: true, alwaysLinkToLastBuild: true, allowMissing: false])
            }
        }
        stage('Docs') {
            when { changeset 'docs/**/*.md' }
            steps { publishHTML([reportDir: 'site', reportFiles: 'index.html', reportName: 'Docs']) }
        }
        stage('Deploy') {
            when { changelog '.*\\[deploy\\].*' }
            steps {
                lock('staging') { sh './deploy staging' }
                lock(resource: 'database', inversePrecedence: true, variable: 'LOCKED') { sh 'echo "$LOCKED"' }
            }
        }
        stage('Platforms') {
            matrix {
                axes {
                    axis { name 'OS'; values 'linux', 'mac', 'windows' }
                    axis { name 'ARCH'; values 'amd64', 'arm64' }
                }
                excludes {
                    exclude {
                        axis { name 'OS'; notValues 'linux' }
                        axis { name 'ARCH'; values 'arm64' }
                    }
                }
                stages {
                    stage('Test') {
                        input { message 'Test this platform?' }
                        steps { sh 'echo "$OS/$ARCH"' }
                    }
                }
            }
        }
    }
}
