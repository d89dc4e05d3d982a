// expect: 11:30 expected a value, found `)`
// expect: 14:37 expected a value, found `*`
// expect: 17:40 unknown escape `\d`
// expect: 20:17 `def` declares a Groovy variable, which Sluice runs only inside `script { }`
pipeline {
    agent any
    stages {
        stage('Syntax') {
            steps {
                script {
                    if (x == ) {
                        echo 'a'
                    }
                    def total = 1 + * 2
                }
                script {
                    def m = "v1.2" =~ "\d+"
                }
                echo 'ok'
                def outside = 1
            }
        }
    }
}
